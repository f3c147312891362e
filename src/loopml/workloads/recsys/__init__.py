"""Job-aware course recommendations: the rule-based service and its ML successor.

The rule-based service recommends what is most popular in a user's segment
(job role); the ML replacement is two-stage: candidates from implicit ALS and
segment popularity, re-ranked by a LightGBM LambdaRank model.
"""
