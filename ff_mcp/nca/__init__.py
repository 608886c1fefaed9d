"""A neural cellular automaton (Growing NCA, Mordvintsev et al. 2020) whose update rule is learned
forward-only, beside the paper's back-propagation through time (extra ``jax``).

- ``core``: the automaton (perception, the 48 -> 128 -> 16 rule, stochastic updates, alive masking);
- ``rules``: ``train_bptt`` and ``train_ff`` (the forward-only rule: FF hidden layer, delta-rule output);
- ``measure``: growth and regeneration scores, the picture strip, the rule's file;
- ``targets``: the committed target images (drawn by this project);
- ``cli``: ``ff-mcp nca train`` and ``ff-mcp nca grow``.
"""
