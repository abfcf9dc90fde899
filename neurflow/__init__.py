"""NeurFlow circuits of image classifiers, stored in Neo4j."""

__version__ = "0.1.0"
