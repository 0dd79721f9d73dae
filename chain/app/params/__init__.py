"""The params module: every module's typed parameters in state, set from genesis and changed only
by gov (chain.app.gov); the list of params types is chain.app.params.registry."""
