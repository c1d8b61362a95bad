"""Rating: usage lines become priced, converted charge lines of the customer's open invoice."""
