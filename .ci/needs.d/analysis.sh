# Root-cause analysis tests need no system package: the OpenAI-compatible
# provider they talk to is a local server started inside each test on
# 127.0.0.1 (a hosted LLM cannot run here), and SQLite is bundled.
:
