"""The ``botscore`` command, one module per subcommand."""
