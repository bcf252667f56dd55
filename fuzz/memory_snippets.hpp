// An in-memory SnippetStore for the tool server's harnesses: no disk, and
// bounded (emptied past 1000 snippets) so that a long run does not grow.
#pragma once

#include <map>
#include <string>

#include "snippet_store.hpp"

class MemorySnippets final : public SnippetStore {
 public:
  StoreStatus save(const std::string& owner, const std::string& name, const std::string& content,
                   std::string&) override {
    if (data_.size() > 1000) data_.clear();
    data_[owner + "\n" + name] = content;
    return StoreStatus::Ok;
  }
  StoreStatus load(const std::string& owner, const std::string& name, std::string& content,
                   std::string&) override {
    auto it = data_.find(owner + "\n" + name);
    if (it == data_.end()) return StoreStatus::NotFound;
    content = it->second;
    return StoreStatus::Ok;
  }

 private:
  std::map<std::string, std::string> data_;
};
