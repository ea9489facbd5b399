/* See shim.h. */
#include "shim.h"
#include <string.h>

/* hairpin's PktBuf (repr(C)) has these fields at these offsets. */
_Static_assert(sizeof(struct hp_buf) == 16, "struct hp_buf is PktBuf: 16 bytes");
_Static_assert(offsetof(struct hp_buf, idx) == 0 && offsetof(struct hp_buf, off) == 4 &&
                   offsetof(struct hp_buf, len) == 6 && offsetof(struct hp_buf, ts) == 8,
               "struct hp_buf is PktBuf: idx, off, len, ts");

int hp_errno(void) { return rte_errno; }
unsigned hp_lcore_id(void) { return rte_lcore_id(); }
void hp_thread_register(void)
{
    if (rte_lcore_id() == LCORE_ID_ANY)
        (void)rte_thread_register();
}
uint16_t hp_pktmbuf_headroom(void) { return RTE_PKTMBUF_HEADROOM; }
int hp_socket_id_any(void) { return SOCKET_ID_ANY; }

struct obj_check {
    char *first;
    size_t stride;
    uint32_t n;
    uint32_t bad;
};

static void check_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned i)
{
    struct obj_check *c = arg;
    size_t d = (size_t)((char *)obj - c->first);
    (void)mp;
    (void)i;
    if ((char *)obj < c->first || d % c->stride != 0 || d / c->stride >= c->n)
        c->bad++;
}

static void first_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned i)
{
    char **f = arg;
    (void)mp;
    (void)i;
    if (*f == NULL || (char *)obj < *f)
        *f = obj;
}

static int congruent(uintptr_t a, uintptr_t b, size_t m)
{
    return (a >= b ? a - b : b - a) % m == 0;
}

struct rte_mempool *hp_pool_create(const char *name, uint32_t n, uint32_t cache,
                                   uint16_t data_room, int socket, const char *align,
                                   struct hp_slots *s, const struct rte_memzone **mzp,
                                   const char **step)
{
    struct rte_pktmbuf_pool_private priv;
    struct rte_mempool *mp;
    const struct rte_memzone *mz;
    struct obj_check c;
    char *first = NULL;
    size_t total, hdr, off = 0;
    int r;

    *mzp = NULL;
    /* Objects may straddle pages: the whole zone is IOVA-contiguous (below),
     * so a buffer is contiguous for DMA anyway, and the stride stays fixed. */
    *step = "rte_mempool_create_empty";
    mp = rte_mempool_create_empty(name, n, sizeof(struct rte_mbuf) + data_room, cache,
                                  sizeof(priv), socket, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
    if (mp == NULL)
        return NULL;
    *step = "rte_mempool_set_ops_byname";
    r = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
    if (r != 0) {
        rte_mempool_free(mp);
        rte_errno = -r;
        return NULL;
    }
    memset(&priv, 0, sizeof(priv));
    priv.mbuf_data_room_size = data_room;
    priv.mbuf_priv_size = 0;
    rte_pktmbuf_pool_init(mp, &priv);

    total = (size_t)mp->header_size + mp->elt_size + mp->trailer_size;
    *step = "rte_memzone_reserve_aligned (IOVA-contiguous)";
    mz = rte_memzone_reserve_aligned(name, total * n + RTE_CACHE_LINE_SIZE + (align ? total : 0),
                                     socket, RTE_MEMZONE_IOVA_CONTIG, RTE_CACHE_LINE_SIZE);
    if (mz == NULL) {
        rte_mempool_free(mp);
        return NULL;
    }
    hdr = sizeof(struct rte_mbuf) + rte_pktmbuf_priv_size(mp);
    if (align != NULL) {
        /* The first object's data room lands at zone + off + header_size + hdr
         * (the zone is cache-line aligned, off a multiple of the line size):
         * pick off so that it is congruent to align. Checked below. */
        uintptr_t a = (uintptr_t)align;
        uintptr_t nat = (uintptr_t)mz->addr + mp->header_size + hdr;
        off = a >= nat ? (a - nat) % total : (total - (nat - a) % total) % total;
    }
    *step = "rte_mempool_populate_iova";
    r = rte_mempool_populate_iova(mp, (char *)mz->addr + off, mz->iova + off, mz->len - off,
                                  NULL, NULL);
    if (r < 0 || (uint32_t)r != n) {
        rte_mempool_free(mp);
        rte_memzone_free(mz);
        rte_errno = r < 0 ? -r : ENOMEM;
        return NULL;
    }
    rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
    rte_mempool_obj_iter(mp, first_obj, &first);
    c.first = first;
    c.stride = total;
    c.n = n;
    c.bad = 0;
    rte_mempool_obj_iter(mp, check_obj, &c);
    *step = "fixed-stride check of the mempool objects";
    if (first == NULL || c.bad != 0 ||
        (align != NULL && !congruent((uintptr_t)first + hdr, (uintptr_t)align, total))) {
        rte_mempool_free(mp);
        rte_memzone_free(mz);
        rte_errno = EINVAL;
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    s->hdr = hdr;
    s->base = first + s->hdr;
    s->stride = total;
    s->magic = (uint64_t)(((unsigned __int128)1 << 64) / total) + 1;
    s->n = n;
    s->room = rte_pktmbuf_data_room_size(mp);
    *mzp = mz;
    return mp;
}

void hp_pool_free(struct rte_mempool *mp, const struct rte_memzone *mz)
{
    rte_mempool_free(mp);
    if (mz != NULL)
        rte_memzone_free(mz);
}

static inline struct rte_mbuf *slot_mbuf(const struct hp_slots *s, uint32_t idx)
{
    return (struct rte_mbuf *)(s->base + (size_t)idx * s->stride - s->hdr);
}

static inline uint64_t div_stride(const struct hp_slots *s, size_t d)
{
    return (uint64_t)(((unsigned __int128)d * s->magic) >> 64);
}

static inline uint32_t mbuf_slot(const struct hp_slots *s, const struct rte_mbuf *m)
{
    return (uint32_t)div_stride(s, (size_t)((char *)m->buf_addr - s->base));
}

int hp_slot_get(struct rte_mempool *mp, const struct hp_slots *s, uint32_t *idx)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    if (m == NULL)
        return -ENOBUFS;
    *idx = mbuf_slot(s, m);
    return 0;
}

unsigned hp_slot_get_bulk(struct rte_mempool *mp, const struct hp_slots *s, uint32_t *idx,
                          unsigned n)
{
    struct rte_mbuf *m[64];
    unsigned i;
    if (n > 64)
        n = 64;
    if (rte_pktmbuf_alloc_bulk(mp, m, n) != 0)
        return 0;
    for (i = 0; i < n; i++)
        idx[i] = mbuf_slot(s, m[i]);
    return n;
}

void hp_slot_put(const struct hp_slots *s, uint32_t idx)
{
    rte_pktmbuf_free(slot_mbuf(s, idx));
}

void hp_slot_put_bulk(const struct hp_slots *s, const uint32_t *idx, unsigned n)
{
    struct rte_mbuf *m[64];
    while (n > 0) {
        unsigned k = n < 64 ? n : 64, i;
        for (i = 0; i < k; i++)
            m[i] = slot_mbuf(s, idx[i]);
        rte_pktmbuf_free_bulk(m, k);
        idx += k;
        n -= k;
    }
}

/* Slot i belongs to one of the joined mempools (not a gap between them). */
static inline int in_segs(const struct hp_slots *s, uint32_t i)
{
    uint32_t k;
    for (k = 0; k < s->nseg && k < HP_MAX_SEGS; k++)
        if (i >= s->seg_lo[k] && i < s->seg_hi[k])
            return 1;
    return 0;
}

/* An mbuf as hairpin left it: one segment, data at off, len bytes.
 *
 * Every mbuf hairpin holds has one segment (take_rx frees the others; the
 * pool hands out reset mbufs), and DPDK keeps `next` NULL on a one-segment
 * mbuf, so `next` (the header's second cache line) is not written. The first
 * line is written only where a field differs: a frame hairpinned unchanged
 * leaves its header as it arrived, so the line is never taken exclusive
 * (where another core filled the RX ring, taking it costs a cross-core
 * transfer per frame). */
static inline struct rte_mbuf *prep_tx(const struct hp_slots *s, uint32_t idx, uint16_t off,
                                       uint16_t len)
{
    struct rte_mbuf *m = slot_mbuf(s, idx);
    if (unlikely(m->data_off != off))
        m->data_off = off;
    if (unlikely(m->data_len != len || m->pkt_len != len)) {
        m->data_len = len;
        m->pkt_len = len;
    }
    if (unlikely(m->nb_segs != 1))
        m->nb_segs = 1;
    if (unlikely(m->ol_flags != 0))
        m->ol_flags = 0;
    return m;
}

/* A received mbuf hairpin can use: one segment, and one of the pool's own
 * (a driver could hand out mbufs of another pool). Others are freed (counted
 * by the caller). */
static inline int take_rx(const struct hp_slots *s, struct rte_mbuf *m, struct hp_buf *b)
{
    size_t d = (size_t)((char *)m->buf_addr - s->base);
    uint64_t i = div_stride(s, d);
    if (unlikely(m->nb_segs != 1 || (char *)m->buf_addr < s->base || i * s->stride != d ||
                 i >= s->n || (s->nseg > 1 && !in_segs(s, (uint32_t)i)))) {
        rte_pktmbuf_free(m);
        return 0;
    }
    b->idx = (uint32_t)i;
    b->off = m->data_off;
    b->len = m->data_len;
    b->ts = 0;
    return 1;
}

uint16_t hp_rx(uint16_t port, uint16_t q, const struct hp_slots *s, struct hp_buf *out,
               uint16_t n, uint64_t *multiseg)
{
    struct rte_mbuf *m[256];
    uint16_t got, i, k = 0;
    if (n > 256)
        n = 256;
    got = rte_eth_rx_burst(port, q, m, n);
    for (i = 0; i < got; i++) {
        if (take_rx(s, m[i], &out[k]))
            k++;
        else
            (*multiseg)++;
    }
    return k;
}

uint16_t hp_tx(uint16_t port, uint16_t q, const struct hp_slots *s, const struct hp_buf *in,
               uint16_t n)
{
    struct rte_mbuf *m[256];
    uint16_t i;
    if (n > 256)
        n = 256;
    for (i = 0; i < n; i++)
        m[i] = prep_tx(s, in[i].idx, in[i].off, in[i].len);
    return rte_eth_tx_burst(port, q, m, n);
}

unsigned hp_ring_put(struct rte_ring *r, const struct hp_slots *s, const struct hp_buf *in,
                     unsigned n)
{
    void *m[256];
    unsigned i;
    if (n > 256)
        n = 256;
    for (i = 0; i < n; i++)
        m[i] = prep_tx(s, in[i].idx, in[i].off, in[i].len);
    return rte_ring_enqueue_burst(r, m, n, NULL);
}

unsigned hp_ring_get(struct rte_ring *r, const struct hp_slots *s, struct hp_buf *out,
                     unsigned n)
{
    void *m[256];
    unsigned got, i, k = 0;
    if (n > 256)
        n = 256;
    got = rte_ring_dequeue_burst(r, m, n, NULL);
    for (i = 0; i < got; i++)
        if (take_rx(s, m[i], &out[k]))
            k++;
    return k;
}

unsigned hp_ring_flags_spsc(void) { return RING_F_SP_ENQ | RING_F_SC_DEQ; }

int hp_port_info(uint16_t port, struct hp_port_info *info)
{
    struct rte_eth_dev_info di;
    int r = rte_eth_dev_info_get(port, &di);
    if (r != 0)
        return r;
    memset(info, 0, sizeof(*info));
    info->max_rx_queues = di.max_rx_queues;
    info->max_tx_queues = di.max_tx_queues;
    info->min_mtu = di.min_mtu;
    info->max_mtu = di.max_mtu;
    info->rx_desc_max = di.rx_desc_lim.nb_max;
    info->tx_desc_max = di.tx_desc_lim.nb_max;
    info->max_rx_pktlen = di.max_rx_pktlen;
    info->socket = rte_eth_dev_socket_id(port);
    info->rss_offloads = di.flow_type_rss_offloads;
    if (di.driver_name != NULL)
        strncpy(info->driver, di.driver_name, sizeof(info->driver) - 1);
    return 0;
}

int hp_port_setup(uint16_t port, uint16_t nq, uint16_t nrxd, uint16_t ntxd, uint16_t mtu,
                  struct rte_mempool *mp, int rss, int promisc, uint64_t *rss_hf,
                  const char **step)
{
    struct rte_eth_conf conf;
    struct rte_eth_dev_info di;
    uint16_t q;
    int socket = rte_eth_dev_socket_id(port);
    int r;

    *rss_hf = 0;
    *step = "rte_eth_dev_info_get";
    r = rte_eth_dev_info_get(port, &di);
    if (r != 0)
        return r;
    memset(&conf, 0, sizeof(conf));
    if (rss && nq > 1) {
        uint64_t want = RTE_ETH_RSS_IP | RTE_ETH_RSS_ETH | RTE_ETH_RSS_L2_PAYLOAD;
        uint64_t hf = want & di.flow_type_rss_offloads;
        if (hf != 0) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            *rss_hf = hf;
        }
    }
    *step = "rte_eth_dev_configure";
    r = rte_eth_dev_configure(port, nq, nq, &conf);
    if (r != 0)
        return r;
    *step = "rte_eth_dev_adjust_nb_rx_tx_desc";
    r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
    if (r != 0)
        return r;
    *step = "rte_eth_dev_set_mtu";
    r = rte_eth_dev_set_mtu(port, mtu);
    if (r != 0 && r != -ENOTSUP)
        return r;
    for (q = 0; q < nq; q++) {
        *step = "rte_eth_rx_queue_setup";
        r = rte_eth_rx_queue_setup(port, q, nrxd, socket < 0 ? (int)rte_socket_id() : socket,
                                   NULL, mp);
        if (r != 0)
            return r;
        *step = "rte_eth_tx_queue_setup";
        r = rte_eth_tx_queue_setup(port, q, ntxd, socket < 0 ? (int)rte_socket_id() : socket,
                                   NULL);
        if (r != 0)
            return r;
    }
    if (promisc) {
        *step = "rte_eth_promiscuous_enable";
        r = rte_eth_promiscuous_enable(port);
        if (r != 0 && r != -ENOTSUP)
            return r;
    }
    *step = "";
    return 0;
}

int hp_link(uint16_t port, uint32_t *speed)
{
    struct rte_eth_link l;
    int r;
    memset(&l, 0, sizeof(l));
    r = rte_eth_link_get_nowait(port, &l);
    if (r != 0)
        return r;
    *speed = l.link_speed;
    return l.link_status == RTE_ETH_LINK_UP;
}

unsigned hp_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
