#pragma once
// How big a lane's batches are, for a provider that takes many messages per
// request (Mews), as pure functions of what the provider said.
//
// A request the provider found too heavy (Mews 408) is sent again at once as
// two halves, and the lane's batches stay at most that half: a 408 on 20
// gives batches of 10, not 20 again with the next arrivals. Each batch of the
// full limit that is answered well grows it by a quarter (at least one), up
// to the adapter's maximum: slowly, so that a provider that is heavy for a
// while is not hit with a full batch at once.
namespace outq::policy {

// `limit`: the lane's current limit (0: none yet, `max` applies). `sent`: the
// deliveries of the request that ended. Returns the new limit (0: `max`).
int batch_limit_after(int limit, int max, int sent, bool too_heavy, bool answered_well);

// The limit that applies now: `max` when none was learnt.
inline int batch_limit_of(int limit, int max) {
    return limit > 0 && limit < max ? limit : max;
}

}  // namespace outq::policy
