#pragma once
// Owning aliases for libcurl handles: a unique_ptr cannot be copied by accident,
// so no handle is freed twice. Build with CURL_STRICTER (set on grin_net) so CURL, CURLM and
// CURLSH are distinct types.

#include <curl/curl.h>

#include <memory>

#include "engine/base/fn_deleter.h"

namespace grin::net {

using CurlEasy = std::unique_ptr<CURL, FnDeleter<curl_easy_cleanup>>;
using CurlMulti = std::unique_ptr<CURLM, FnDeleter<curl_multi_cleanup>>;
using CurlShare = std::unique_ptr<CURLSH, FnDeleter<curl_share_cleanup>>;
using CurlSlist = std::unique_ptr<curl_slist, FnDeleter<curl_slist_free_all>>;
using CurlUrl = std::unique_ptr<CURLU, FnDeleter<curl_url_cleanup>>;

static_assert(sizeof(CurlEasy) == sizeof(CURL*), "CurlEasy must stay pointer-sized");

}  // namespace grin::net
