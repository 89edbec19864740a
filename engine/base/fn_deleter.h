#pragma once
// FnDeleter<Fn>: a unique_ptr deleter that calls a C library's free function, so every C handle
// (CURL*, EVP_MD_CTX*, archive*, ...) is owned by a std::unique_ptr and cannot be copied by
// accident:   using CurlEasy = std::unique_ptr<CURL, FnDeleter<curl_easy_cleanup>>;

namespace grin {

template <auto Fn>
struct FnDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p) Fn(p);
  }
};

}  // namespace grin
