// Values that may arrive later, for code on the one event-loop thread: a
// storage call that waits for Redis answers through a Future, and so do the
// tool call and the JSON-RPC response above it.
//
// A Future is either ready, holding its value inline (no allocation: the
// common case, hello_mcp or a SQLite store), or tied to a Promise through a
// shared state that the promise's owner completes from a later loop turn.
// Single-threaded: no locks. A promise that is never kept (its owner went
// away) simply never runs the continuation.
#pragma once

#include "log.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace toolserver {

template <typename T>
class Promise;

template <typename T>
class Future {
public:
    static Future ready(T value) {
        Future f;
        f.value_.emplace(std::move(value));
        return f;
    }

    // True when the value is here now: take() it.
    bool is_ready() const { return value_.has_value(); }
    // The value of a ready future (once).
    T take() {
        T v = std::move(*value_);
        value_.reset();
        return v;
    }

    // Runs `fn` with the value: at once when it is here, else when the
    // promise is kept.
    void then(std::function<void(T)> fn) {
        if (value_) {
            fn(take());
            return;
        }
        if (state_->value) {
            T v = std::move(*state_->value);
            state_->value.reset();
            fn(std::move(v));
            return;
        }
        // Runs later, from another turn of the loop: in the log context
        // (trace id) of the request that is waiting for it.
        state_->then = [fn = std::move(fn), trace = LogTrace::current()](T v) {
            LogTrace in(trace);
            fn(std::move(v));
        };
    }

    // A future for fn(value): ready when this one is, else completed along with it.
    template <typename F>
    Future<std::invoke_result_t<F, T>> map(F fn) {
        using U = std::invoke_result_t<F, T>;
        if (value_) return Future<U>::ready(fn(take()));
        Promise<U> p;
        then([p, fn = std::move(fn)](T v) mutable { p.set(fn(std::move(v))); });
        return p.future();
    }

private:
    friend class Promise<T>;
    struct State {
        std::optional<T> value;          // kept before anyone asked for it
        std::function<void(T)> then;     // asked for before it was kept
    };

    std::optional<T> value_;
    std::shared_ptr<State> state_;
};

template <typename T>
class Promise {
public:
    Promise() : state_(std::make_shared<typename Future<T>::State>()) {}

    Future<T> future() const {
        Future<T> f;
        f.state_ = state_;
        return f;
    }

    // Keeps the promise (once): runs the continuation, or holds the value for it.
    void set(T value) const {
        if (state_->then) {
            std::function<void(T)> fn = std::move(state_->then);
            state_->then = nullptr;
            fn(std::move(value));
        } else {
            state_->value.emplace(std::move(value));
        }
    }

private:
    std::shared_ptr<typename Future<T>::State> state_;
};

}  // namespace toolserver
