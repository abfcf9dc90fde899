"""``neurflow serve``: the atlas as a local, read-only web app over the graph (:mod:`neurflow.serve.app`).

Every page is named queries of :mod:`neurflow.workbench.queries`; :mod:`neurflow.serve.views` turns their rows into
what a page draws; :mod:`neurflow.serve.files` sends only the circuits' own thumbnails and images.
"""
