/* ctl_commands.c - the command and error tables of ctl_commands.h, as data
 * and as the help reply (no handlers: pfsctl links this too). */
#include "ctl_commands.h"

#include <jansson.h>
#include <stddef.h>
#include <string.h>

const struct ctl_command ctl_commands[CTL_CMD_COUNT] = {
#define CTL_CMD_ROW(n, p, a, ro, h) \
	[CTL_CMD_##n] = { .name = #n, .params = p, .args = a, .help = h, .read_only = ro },
	CTL_COMMANDS(CTL_CMD_ROW)
#undef CTL_CMD_ROW
};

const struct ctl_command *ctl_command_find(const char *name)
{
	for (int i = 0; name && i < CTL_CMD_COUNT; i++)
		if (!strcmp(ctl_commands[i].name, name))
			return &ctl_commands[i];
	return NULL;
}

static const struct {
	int code;
	const char *name, *meaning;
} errors[] = {
#define CTL_ERR_ROW(n, c, m) { c, #n, m },
	CTL_ERRORS(CTL_ERR_ROW)
#undef CTL_ERR_ROW
};

const char *ctl_error_name(int code)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == code)
			return errors[i].name;
	return NULL;
}

const char *ctl_error_meaning(int code)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == code)
			return errors[i].meaning;
	return NULL;
}

void *ctl_help_json(void)
{
	json_t *cmds = json_array(), *errs = json_array();

	for (int i = 0; i < CTL_CMD_COUNT; i++) {
		const struct ctl_command *k = &ctl_commands[i];
		json_array_append_new(cmds, json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", k->name,
						      "params", k->params, "args", k->args,
						      "help", k->help, "read_only", k->read_only));
	}
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		json_array_append_new(errs, json_pack("{s:i, s:s, s:s}", "code", errors[i].code,
						      "name", errors[i].name,
						      "meaning", errors[i].meaning));
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "commands", cmds, "errors", errs);
}
