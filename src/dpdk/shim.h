/* hairpin's C shim over DPDK: the static-inline parts of the API (rx/tx burst,
 * mbuf alloc/free, rte_errno, lcore id, rings) and the steps that are simpler
 * to write against DPDK's C structs (mempool over one IOVA-contiguous zone,
 * port configuration). bindgen reads this header; build.rs compiles shim.c. */
#ifndef HAIRPIN_DPDK_SHIM_H
#define HAIRPIN_DPDK_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

/* The fixed slot <-> mbuf mapping of a hairpin pool: slot i's data room
 * (mbuf->buf_addr) is at base + i * stride; the mbuf header is hdr bytes
 * in front of it. */
#define HP_MAX_SEGS 8
struct hp_slots {
    char *base;
    size_t stride;
    size_t hdr;
    /* floor(2^64 / stride) + 1: offset / stride as a multiply (exact for
     * multiples of stride, which is all hp_rx accepts). */
    uint64_t magic;
    uint32_t n;
    uint16_t room;
    /* Several mempools (one per NUMA socket) in one slot space: their objects
     * share the stride and sit at addresses congruent modulo it, so one base
     * serves all; slots [seg_lo[k], seg_hi[k]) are mempool k's and the gaps
     * between them are no one's. nseg <= 1: every slot below n is the pool's. */
    uint32_t nseg;
    uint32_t seg_lo[HP_MAX_SEGS];
    uint32_t seg_hi[HP_MAX_SEGS];
};

int hp_errno(void);
unsigned hp_lcore_id(void);
/* Give the calling (non-EAL) thread an lcore id, so mempool caches work. */
void hp_thread_register(void);
uint16_t hp_pktmbuf_headroom(void);
int hp_socket_id_any(void);

/* A pktmbuf pool of n mbufs over one IOVA-contiguous memzone, so its objects
 * sit at a fixed stride. Fills *s. NULL with rte_errno set on failure; *step
 * names the step that failed. With align (the base of another pool made with
 * the same data room), the objects are placed so that their data rooms are
 * congruent to align modulo the stride (the zone is one stride larger). */
struct rte_mempool *hp_pool_create(const char *name, uint32_t n, uint32_t cache,
                                   uint16_t data_room, int socket, const char *align,
                                   struct hp_slots *s, const struct rte_memzone **mz,
                                   const char **step);
void hp_pool_free(struct rte_mempool *mp, const struct rte_memzone *mz);

/* Slots (mbufs) by index. */
int hp_slot_get(struct rte_mempool *mp, const struct hp_slots *s, uint32_t *idx);
/* n slots at once (rte_pktmbuf_alloc_bulk: all or none); returns n or 0. */
unsigned hp_slot_get_bulk(struct rte_mempool *mp, const struct hp_slots *s, uint32_t *idx,
                          unsigned n);
void hp_slot_put(const struct hp_slots *s, uint32_t idx);
void hp_slot_put_bulk(const struct hp_slots *s, const uint32_t *idx, unsigned n);

/* One frame as hairpin holds it: hairpin's PktBuf (repr(C), the same
 * fields in the same order), so bursts are read and written in place. */
struct hp_buf {
    uint32_t idx;
    uint16_t off;
    uint16_t len;
    uint64_t ts;
};

/* Burst I/O in slot terms. hp_rx writes out[0..returned) (ts 0), and frees
 * (and counts in *multiseg) chained mbufs and mbufs that are not the pool's
 * own. */
uint16_t hp_rx(uint16_t port, uint16_t q, const struct hp_slots *s, struct hp_buf *out,
               uint16_t n, uint64_t *multiseg);
uint16_t hp_tx(uint16_t port, uint16_t q, const struct hp_slots *s, const struct hp_buf *in,
               uint16_t n);

/* The same over an rte_ring (the far side of an rte_eth_from_rings port). */
unsigned hp_ring_put(struct rte_ring *r, const struct hp_slots *s, const struct hp_buf *in,
                     unsigned n);
unsigned hp_ring_get(struct rte_ring *r, const struct hp_slots *s, struct hp_buf *out,
                     unsigned n);
unsigned hp_ring_flags_spsc(void);
unsigned hp_ring_count(const struct rte_ring *r);

struct hp_port_info {
    uint16_t max_rx_queues;
    uint16_t max_tx_queues;
    uint16_t min_mtu;
    uint16_t max_mtu;
    uint16_t rx_desc_max;
    uint16_t tx_desc_max;
    uint32_t max_rx_pktlen;
    int socket;
    uint64_t rss_offloads;
    char driver[64];
};
int hp_port_info(uint16_t port, struct hp_port_info *info);

/* Configure queues (nq RX and TX), descriptors, MTU, RSS on L2/L3 fields when
 * the device offers it (*rss_hf gets what was enabled), promiscuous mode.
 * Returns 0 or a negative errno; *step names the call that failed. */
int hp_port_setup(uint16_t port, uint16_t nq, uint16_t nrxd, uint16_t ntxd, uint16_t mtu,
                  struct rte_mempool *mp, int rss, int promisc, uint64_t *rss_hf,
                  const char **step);
/* Link state without waiting: 1 up, 0 down, negative errno. *speed in Mb/s. */
int hp_link(uint16_t port, uint32_t *speed);

#endif
