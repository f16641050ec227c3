/* pfs_bcast.h - the broadcast address PFS claims go to on a subnet
 * (docs/protocol.md 2). Shared by pfs-peer and pfs-control.
 *
 * An address added without `brd` (`ip addr add 10.77.0.11/24 dev eth0`)
 * leaves the interface with no broadcast address, which Linux reports as
 * 0.0.0.0 or as the interface's own address. Claims sent there reach only
 * the sender: every device elects itself and fetches every file (3.7 times
 * the WAN bytes on a 7-device site, issue "Rollouts at the speed of the
 * WAN"). So such a report is replaced by the subnet's directed broadcast,
 * address | ~netmask; a /31 or /32 has none, and gets 255.255.255.255.
 */
#ifndef PFS_BCAST_H
#define PFS_BCAST_H

#include <stdbool.h>
#include <stdint.h>

/* All host order. *derived: the report was unusable and the result derived. */
static inline uint32_t pfs_broadcast_for(uint32_t ip, uint32_t netmask, uint32_t reported,
					 bool *derived)
{
	uint32_t directed = ip | ~netmask;

	*derived = false;
	if (reported && reported != ip)
		return reported;
	*derived = true;
	if (netmask == 0xffffffffu || netmask == 0xfffffffeu || !netmask)
		return 0xffffffffu;
	return directed;
}

/* A prefix length (0..32) as a netmask, host order. */
static inline uint32_t pfs_prefix_mask(unsigned prefix)
{
	return prefix ? ~0u << (32 - (prefix > 32 ? 32 : prefix)) : 0;
}

#endif /* PFS_BCAST_H */
