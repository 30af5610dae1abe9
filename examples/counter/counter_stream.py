from runtime import StreamConfig

config = StreamConfig(name="counter", schema={"value": "integer"})
