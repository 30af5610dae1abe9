from runtime import Stream, cron, step

todo = Stream("todo")

tick = step({"name": "NewYear", "description": "Once a year; run it now from the console",
             "triggers": [cron("0 0 1 1 *")]})


@tick.handle
async def new_year(ctx):
    await todo.set("cron", "tick", {"title": "ran"})
