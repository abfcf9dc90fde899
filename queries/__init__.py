"""The named Cypher queries (``*.cypher``), shipped inside the wheel as ``neurflow.queries``.

``neurflow query --list`` lists them; each file's header gives its name, description and parameters. Add a
file here (or point ``NEURFLOW_QUERIES`` at a folder of your own) to add a query.
"""
