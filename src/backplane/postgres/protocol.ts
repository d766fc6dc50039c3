/**
 * The Postgres backplane protocol:
 *
 * - The log is the table `messages (seq bigint, created_at, hub text, node_ids uuid[], payload bytea,
 *   snapshot text, writer_xid bigint)`: the writer's snapshot and transaction, so a reader delivers a row
 *   only to connections whose registration (and, for a group, whose joining) its writer saw
 *   (writer-snapshot.ts).
 *   The log is the source of truth: a wake-up (NOTIFY) may carry copies of a small batch's rows, so a
 *   reader up to date can skip the read (wakeup.ts), but a reader that may have missed one reads the table.
 *   Every statement that writes the log wakes the nodes it wrote rows for (log.ts, logRowsCtes): a reader
 *   steps over the ranges between its notices, so a row written without one could be skipped.
 * - `seq` is gap-free and commit-ordered. It is not a bigserial: concurrent transactions commit bigserial
 *   ids out of order, and a reader trusting `id > last` skips the row that commits late. Instead every
 *   writing statement takes the next numbers from the single counter row `log_head` with
 *   `UPDATE log_head SET last_seq = last_seq + n RETURNING last_seq` (the scheme of ASP.NET SignalR's SQL
 *   Server backplane). The row lock is held until the writer commits, so the next writer gets its numbers
 *   only after the previous one is visible: commit order equals seq order, and a rollback returns its
 *   numbers. Hence a reader's snapshot always holds exactly the rows `1 .. log_head.last_seq` (of those
 *   not trimmed), and `seq > cursor` can never skip a row that commits later nor return one twice.
 *   The price is that writers serialise on one row; batching (many messages per statement) pays for it.
 * - `node_ids` lists the nodes that held recipients when the row was written, resolved against the
 *   registry in the same statement. A node reads only `seq > cursor AND me = ANY(node_ids)`, and moves
 *   its cursor to `log_head.last_seq` of the same snapshot when it has read everything, so rows for other
 *   nodes are never fetched twice. Rows with no recipients are not written.
 * - Group changes are log rows too, addressed to the node owning the connection. That node keeps its
 *   memberships in memory and applies the change in log order, so a send written after the change (a
 *   higher seq) finds the member, and one written before it does not.
 * - `payload` is one MessagePack array, encoded once by the writer, whose first item is its type:
 *   - `[1, targetKind, ids, excludedIds, method, arguments, invocationId?, traceparent?]`: an invocation.
 *     targetKind is 0 all, 1 connections, 2 groups, 3 users; `ids` are the connection ids, group names or
 *     user ids. `invocationId` only when the sender awaits the client's answer (a client result), else nil
 *     when a `traceparent` (the send's W3C trace context) follows.
 *   - `[2, connectionId, group]`: add a connection of the addressed node to a group.
 *   - `[3, connectionId, group]`: remove it.
 *   Control rows of a connection's move (targetKind 4: addressed to the nodes they name, see registry.ts
 *   `moveConnection` and postgres-backplane.ts for the sequence):
 *   - `[4, connectionId, toNode]`: the node `toNode` asks the addressed node for one of its connections.
 *   - `[5, connectionId, fromNode, toNode]`: the move is in force from this row on (written by the move
 *     itself, to both nodes): rows before it are the old node's to deliver, rows after it the new one's.
 *   - `[6, connectionId, state, groups]`: the old node hands over the connection's state (bytes of the
 *     hub layer's) and its memberships `[[group, seq, isMember]…]`.
 *   - `[7, connectionId, reason]`: the addressed node cannot have the connection.
 *   Another control row, to the node awaiting a client result:
 *   - `[8, connectionId, invocationId, isError, resultOrErrorText, connectionEnded]`: the connection's
 *     answer (`connectionEnded`: the error is the server's, the connection ended before answering).
 *   Another control row, to the node holding a connection that an administrator disconnects:
 *   - `[11, connectionId]`: close it (its client may reconnect).
 *   Another control row, to every other node, from a node that starts (node-arrivals.ts):
 *   - `[12, nodeId]`: a node has arrived; the addressees stop sending as if alone before it serves anyone.
 *   An invocation sent from SQL (sql-publishing.ts), whose arguments are JSON text:
 *   - `[10, targetKind, ids, excludedIds, method, argumentsJson]`.
 *   Readers ignore unknown trailing fields, so a newer writer may append items, and skip (and log) rows
 *   of an unknown type, so nodes of two versions can share a log during a rolling upgrade.
 */

// The envelopes themselves are backplane-neutral (the Redis backplane carries the same ones).
export * from "../shared/envelopes.js";
export { TargetKind, targetParts, type DecodedTarget, type HandedOverGroup } from "../shared/targets.js";
