//! China AQI (HJ 633-2012); filled in below.
