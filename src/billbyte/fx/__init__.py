"""Foreign exchange: rates per MSP, the MSP's rate policy, conversion and triangulation."""
