"""Sessions: the plan's schedule, the runner and its safety supervisor, the devices bound to
roles, the radio (real or simulated) and the typed event stream every front end reads."""
