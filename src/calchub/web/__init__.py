"""The web pages: a small, server-rendered front for what a person does in a browser (sign in,
API keys, password reset, email verification, support tickets). No script framework and
nothing loaded from another host."""
