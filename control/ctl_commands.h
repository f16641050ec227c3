/* ctl_commands.h - the control socket's commands and error codes: one
 * table, read by pfs-control (control/ctlcmds.c: a handler per command,
 * the arguments checked before it runs, the read-only socket's limits) and
 * by pfsctl (its usage, `pfsctl help` with or without a daemon, and how its
 * arguments become a request). docs/appliance.md 5 documents both.
 *
 * BIRD-style: a command is a name, its arguments, a line of help, and
 * whether it only reads (the read-only socket runs those alone). Adding a
 * command is a line here and a cmd_NAME handler in ctlcmds.c; the build
 * fails if the handler is missing.
 */
#ifndef PFS_CTL_COMMANDS_H
#define PFS_CTL_COMMANDS_H

#include <stdbool.h>

/* X(name, params, args, read_only, help)
 *   params: the request's members besides "cmd", space-separated, in the
 *           order pfsctl takes its arguments; "#" after a name: an integer,
 *           else a string
 *   args:   how an operator writes them on pfsctl's command line */
#define CTL_COMMANDS(X) \
	X(help, "", "", true, "the commands, their arguments, who may run them, and the error codes") \
	X(status, "", "", true, "the appliance, its dataplane and cache") \
	X(trees, "", "", true, "every hierarchy it takes part in") \
	X(tree, "key", "KEY", true, "one hierarchy, drawn (a key prefix of 4+ hex digits)") \
	X(files, "", "", true, "the chunk cache") \
	X(peers, "", "", true, "the devices it serves") \
	X(clients, "", "", true, "TFTP and HTTP transfers in progress (load server)") \
	X(stats, "", "", true, "counters of control, engine, dataplane and cache") \
	X(events, "", "", true, "every event as it happens, until the client leaves") \
	X(prefetch, "model file", "MODEL FILE", false, \
	  "fetch a file into the cache before devices ask") \
	X(evict, "", "", false, "drop every cached file no rollout uses") \
	X(set, "key value#", "priority N", false, "priority class 0..15 for new elections") \
	X(enable, "", "", false, "take part in elections") \
	X(disable, "", "", false, "leave every tree, take part in none")

enum ctl_cmd_id {
#define CTL_CMD_ID(name, params, args, ro, help) CTL_CMD_##name,
	CTL_COMMANDS(CTL_CMD_ID)
#undef CTL_CMD_ID
	CTL_CMD_COUNT
};

struct ctl_command {
	const char *name, *params, *args, *help;
	bool read_only;
};

extern const struct ctl_command ctl_commands[CTL_CMD_COUNT];

/* The command called name, or NULL. */
const struct ctl_command *ctl_command_find(const char *name);

/* Error codes of a reply {"ok": false, "code": N, "error": "..."}: stable
 * numbers, for scripts; the message is for humans.
 * X(name, code, meaning) */
#define CTL_ERRORS(X) \
	X(malformed, 1, "the request is not a JSON object with a string \"cmd\"") \
	X(unknown_command, 2, "no command by that name (see help)") \
	X(bad_arguments, 3, "a member the command needs is missing, of the wrong type or out of range") \
	X(read_only, 4, "the command changes state and this socket is the read-only one") \
	X(not_found, 5, "what the command names does not exist (a tree key, a model not served)") \
	X(conflict, 6, "the appliance's state forbids it now (already being fetched, disabled)") \
	X(too_long, 7, "the request line is longer than the daemon takes") \
	X(busy, 8, "every client slot is taken") \
	X(internal, 9, "the daemon failed to carry it out (out of memory, I/O)")

enum ctl_error {
#define CTL_ERR_ID(name, code, meaning) CTL_E_##name = code,
	CTL_ERRORS(CTL_ERR_ID)
#undef CTL_ERR_ID
};

/* The reply to help: {"ok", "commands": [...], "errors": [...]}, a json_t *
 * (the header stays free of jansson for whoever only needs the table). */
void *ctl_help_json(void);

/* "read_only" for CTL_E_read_only; NULL for a code not in the table. */
const char *ctl_error_name(int code);
const char *ctl_error_meaning(int code);

#endif /* PFS_CTL_COMMANDS_H */
