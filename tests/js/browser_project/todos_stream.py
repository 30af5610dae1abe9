from runtime import HistoryPolicy, StreamConfig

# Everyone may follow a group but "secret"; the history covers a restart's worth of missed changes.
config = StreamConfig(name="todos", history=HistoryPolicy(max_events=1000),
                      can_access=lambda subscription, auth: subscription.group_id != "secret")
