from runtime import StreamConfig

config = StreamConfig(
    name="todo",
    description="Todo items, one group per list",
    schema={"type": "object", "properties": {"title": {"type": "string"}, "done": {"type": "boolean"}},
            "required": ["title"]},
)
