"""The screens of the terminal UI: home, session, help, and the yes/no question."""
