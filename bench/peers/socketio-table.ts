/** The attachments table of the Socket.IO PostgreSQL adapter, named for the bench so it never meets an app's. */
export const SOCKET_IO_TABLE = "bench_socket_io_attachments";
