"""What tests, benchmarks and load tests share to run Parley: doubles of the services this machine
cannot reach (Telegram, the LLM gateway, Vault's failure modes), harnesses for the real ones
(kube-apiserver, a bot process), and the stats reference the rollups are checked against.

Never imported by the shipped packages (core, api, bot, operator); the images do not contain it.
"""
