// Placeholder while the implementation lands; see curl_transport.h.
