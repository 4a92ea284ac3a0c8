"""The broker contract suite (test_contract.py), run against every backend_*.py here."""
