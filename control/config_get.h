/* config_get.h - pfs-control's configuration getters (config_get.c):
 * each reads one setting of a libconfig group, checks its type and range,
 * and reports a problem as "FILE:LINE: group.key: problem" (-1). name is
 * "group.key", as reported; the key looked up is after the dot. Absent
 * settings leave *out as it is (0), unless required.
 */
#ifndef PFS_CONFIG_GET_H
#define PFS_CONFIG_GET_H

#include <libconfig.h>
#include <stdbool.h>

#include "control.h"

int cfg_fail(const struct ctl_config *c, config_setting_t *s, const char *key, const char *fmt,
	     ...) __attribute__((format(printf, 4, 5)));
int cfg_str(const struct ctl_config *c, config_setting_t *root, const char *name,
	    char *out, size_t cap, bool required);
int cfg_bool(const struct ctl_config *c, config_setting_t *root, const char *name,
	     bool *out);
int cfg_hostport(const struct ctl_config *c, config_setting_t *g, const char *name,
		 const char *v);
int cfg_seconds(const struct ctl_config *c, config_setting_t *root, const char *name,
		double lo, double hi, double *out);
int cfg_int(const struct ctl_config *c, config_setting_t *root, const char *name,
	    long long lo, long long hi, long long *out);
int cfg_ip(const struct ctl_config *c, config_setting_t *root, const char *name,
	   char *str, uint32_t *ip, bool required);
/* An octal permission mode as a string ("0660": libconfig has no octal). */
int cfg_mode(const struct ctl_config *c, config_setting_t *g, const char *name, int *out);
int cfg_listen(const struct ctl_config *c, config_setting_t *g, const char *name,
	       uint32_t *ip, uint16_t *port);

#endif /* PFS_CONFIG_GET_H */
