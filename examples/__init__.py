"""agentlightning.examples"""
