"""Domain code two services need: one job a module (luhn.py, money.py)."""
