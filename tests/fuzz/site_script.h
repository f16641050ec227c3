/* site_script.h - the site fuzz_site reads from its input; also what
 * gen_corpus --site writes its seeds with.
 *
 *   flags(1) seed(2) loss(1) latency(1) upstream_rate(1) [lan_rate(1)]
 *   chunk(1) size(2) calm(1) [down_from(1) down_len(1)] nnodes(1)
 *   { a(1) b(1) start(1) [kill(1)] } per node
 *
 * Bracketed fields are there only when a flag says so (SS_F_LAN_RATE,
 * SS_F_SERVER_DOWN; kill when SS_F_KILLS and the node's SS_B_KILL).
 * Numbers are big-endian and taken modulo their range (fuzz_site.c's
 * read_site() is the one reader); an input that runs out reads zeros.
 */
#ifndef PFS_SITE_SCRIPT_H
#define PFS_SITE_SCRIPT_H

/* flags */
#define SS_F_SIGNED        0x01        /* the publisher signed the file; all trust it */
#define SS_F_SITE_KEY      0x02
#define SS_F_LAN_RATE      0x04        /* node ports at (1 + lan_rate) * 40 kB/s */
#define SS_F_SERVER_DOWN   0x08        /* down_from * 100 ms, for 1 + down_len s */
#define SS_F_CORRUPT       0x10        /* nodes with SS_A_CORRUPT alter their chunks */
#define SS_F_ROGUE         0x20        /* nodes with SS_B_ROGUE serve a file of their own */
#define SS_F_KILLS         0x40        /* nodes with SS_B_KILL die at kill * 50 ms */
#define SS_F_SLOW_HASH     0x80        /* digests come 1 + seed % 200 ms after HASH_FILE */

/* a: what the node is */
#define SS_A_APPLIANCE     0x01
#define SS_A_RELAY         0x02        /* with SS_A_APPLIANCE: a site relay */
#define SS_A_MODE(m)       ((m) << 2)  /* 0 cut-through, 1 store-forward, 2 solo */
#define SS_A_TWO_SLOTS     0x10
#define SS_A_PRELOAD       0x20        /* holds the file from its start */
#define SS_A_AUTOJOIN      0x40        /* with SS_A_APPLIANCE: wants it once named */
#define SS_A_CORRUPT       0x80

/* b: when and what it wants */
#define SS_B_WANT_LATER    0x01        /* wants it (b >> 1 & 15) * 300 ms after start */
#define SS_B_ROGUE         0x20
#define SS_B_MODEL_B       0x40        /* the other model (same path) */
#define SS_B_KILL          0x80

/* start: start * 20 ms */

#endif /* PFS_SITE_SCRIPT_H */
