"""agentlightning.testing: helpers to test instrumented agents offline (a scripted OpenAI-compatible server)."""
