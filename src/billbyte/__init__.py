"""BillByte: usage billing for cloud service brokers."""

__version__ = "0.1.0"
