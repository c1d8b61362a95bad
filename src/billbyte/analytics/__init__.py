"""Help-desk analytics: why is this customer's bill what it is?"""
