"""The official indices as pure functions: VN_AQI and US AQI (air), VN_WQI and QCVN 08 classes (water),
level of service (traffic), ridership and origin–destination flows (transit).

No Kafka, no Redis, no clock reads: stream agents and the offline ``ioc index`` command call the same code.
"""
