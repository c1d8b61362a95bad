"""The enterprise cost portal: pages for a customer's users, under their MSP's brand."""
