/* src/sim/sim_internal.h: pieces shared by the simulator and its policies. */
#ifndef MAGPIE_SIM_INTERNAL_H
#define MAGPIE_SIM_INTERNAL_H

#include "magpie/sim.h"

/* mp_sim_run over the given shopper indices (users[n], each < world users, distinct). The policy's state.user is
 * the world's shopper index. */
int mp_sim_run_users(const mp_sim_world *w, const mp_sim_opts *o, const mp_sim_policy *p, uint64_t seed,
                     const uint32_t *users, uint32_t n, mp_sim_result *res, mp_error *err);

#endif
