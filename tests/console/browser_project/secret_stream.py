from runtime import StreamConfig

# Nobody may subscribe: only the console token sees it.
config = StreamConfig(name="secret", description="Refused to every subscriber",
                      can_access=lambda subscription, auth: False)
