"""Price plans and rules: how vendor cost becomes the customer's price."""
