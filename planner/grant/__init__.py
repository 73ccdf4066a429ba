"""Grant proposals: the proposal file, the call's programs, the costed build, the rendered document."""
