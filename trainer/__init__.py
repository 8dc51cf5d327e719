"""agentlightning.trainer"""
