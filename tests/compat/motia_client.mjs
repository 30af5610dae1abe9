// Drives Motia's real Node stream client against this runtime and reports
// what the client's own state becomes, one JSON line per change on stdout.
// Usage: node motia_client.mjs ws://host:port token
import { Stream } from "@motiadev/stream-client-node";
import readline from "node:readline";

const [url, token] = process.argv.slice(2);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const stream = new Stream(url, { protocols: ["Authorization", token] });
const group = stream.subscribeGroup("todos", "inbox", "id");
const item = stream.subscribeItem("todos", "inbox", "a");
const denied = stream.subscribeGroup("todos", "secret");

group.addChangeListener((state) => out({ sub: "group", state }));
item.addChangeListener((state) => out({ sub: "item", state }));
group.onEvent("typing", (data) => out({ sub: "group", event: "typing", data }));
denied.addChangeListener((state) => out({ sub: "denied", state }));
denied.onEvent("error", (data) => out({ sub: "denied", event: "error", data }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "close") {
    stream.close();
    out({ closed: true });
    setTimeout(() => process.exit(0), 50);
  }
});
