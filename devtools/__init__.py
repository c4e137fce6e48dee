"""Developer tooling around the Pulumi program: declaring a stack under mocks, with no CLI."""
