"""CLINC150 loading, its label order, arguments and metric."""
