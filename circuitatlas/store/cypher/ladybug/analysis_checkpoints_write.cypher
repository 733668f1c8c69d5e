// An analysis's checkpoint properties ($rows: an Arrow table with key and every property).
LOAD FROM $rows
MATCH (ck:Checkpoint {key: key})
SET ck.tau = tau, ck.measure = measure, ck.cost = cost, ck.top_k = top_k,
    ck.n_nodes = n_nodes, ck.n_edges = n_edges, ck.density = density,
    ck.mean_weight = mean_weight, ck.weight_gini = weight_gini,
    ck.weight_tail_index = weight_tail_index,
    ck.spreader_jaccard = spreader_jaccard, ck.gatherer_jaccard = gatherer_jaccard,
    ck.gatekeeper_jaccard = gatekeeper_jaccard, ck.role_stability = role_stability,
    ck.reconfiguration = reconfiguration, ck.phase = phase
