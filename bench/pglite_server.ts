/**
 * Serves a PGlite data directory over the Postgres wire protocol on
 * 127.0.0.1 (pglite-socket), for the benchmark: `deno run … pglite_server.ts
 * DATA_DIR PORT`. Prints `listening PORT` when ready; stops on SIGTERM.
 *
 * @module
 */

import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const [dataDir, port] = Deno.args;
await Deno.mkdir(dataDir!, { recursive: true });
const db = await PGlite.create({ dataDir: dataDir!, extensions: { vector } });
await db.exec("create extension if not exists vector");
const server = new PGLiteSocketServer({
  db,
  port: Number(port ?? 0),
  host: "127.0.0.1",
});
await server.start();
const stop = async () => {
  await server.stop();
  await db.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await Deno.stdout.write(
  new TextEncoder().encode(
    `listening ${server.getServerConn().split(":").pop()}\n`,
  ),
);
