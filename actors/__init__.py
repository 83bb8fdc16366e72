"""grades: an actor runtime on ZeroMQ and the replicated UserGrade store built on it."""
