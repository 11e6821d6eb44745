# The full objective of evomal-sr's PySR engine.
#
# PySR's `loss_function` receives an expression tree, the dataset and the
# options, and returns a loss. Here the loss is the validation error of a model
# trained with the tree as its loss function, which only the Python side
# (PyTorch) can compute. The objective therefore
#
#   1. prints the tree with SymbolicRegression's `string_tree` (the variables are
#      named `y` and `fx` through the dataset's variable names);
#   2. looks the string up in a memo shared by all Julia threads;
#   3. otherwise hands the string to the Python callback (`LossCallback` in
#      `evomal_sr/engines/pysr/bridge.py`) and polls it for the fitness;
#   4. turns every failure into `L(Inf)`, so a bad candidate never aborts the
#      search.
#
# Why submit-and-poll instead of one blocking Python call: PySR (from 2.2.0, which
# calls `equation_search._jl_call_nogil`) runs the search with Python's GIL
# released, so each Julia thread must take the GIL back
# (`PythonCall.GIL.@lock`) to call Python. A Julia thread that waits inside Python
# for a long time cannot reach a GC safepoint, and a Julia thread blocked in
# `PyGILState_Ensure` cannot either; if another thread then starts a garbage
# collection while holding the GIL, nothing can move again (PythonCall.jl issue
# #627). So every Python call made here is short (submit a request, or ask
# whether its result is ready), happens under one Julia-side lock so that at most
# one Julia thread asks for the GIL at a time, and the waiting between polls is a
# Julia `sleep`, which lets the garbage collector and other tasks run. Meanwhile
# the Python worker thread gathers the requests of all Julia threads into one
# batched evaluation.
#
# The waiting is bounded: a request still unanswered after the callback's
# candidate timeout is scored Inf, with a warning, so an evaluator that never
# answers cannot block the search, or PySR's teardown, forever. The Python side
# gives up first (`LossCallback.poll` answers Inf once the ticket is older than
# its timeout); this loop stops on its own `POLL_LIMIT` as a backstop.
#
# In a serial search (one Julia task searching, so no other thread needs the GIL
# or a safepoint from this one) each `poll` waits up to a quarter of a second in
# Python, with the GIL released, for its answer: that keeps the Python worker
# running even when PySR's search holds the GIL. A multithreaded search's polls
# return at once.
#
# The Python callback reaches Julia through `install_callback`, which the engine
# calls (via juliacall) before `PySRRegressor.fit`, and `remove_callback`, which
# it calls afterwards. PySR is given the objective as the string
# "EvomalPySR.objective" after this file has been included into `Main`.

module EvomalPySR

using PythonCall: PythonCall, Py, pyconvert
using SymbolicRegression: Dataset, string_tree

# The Python `LossCallback` of the running search (`nothing` between searches).
const CALLBACK = Ref{Union{Nothing,Py}}(nothing)
# Held around every use of the GIL, so only one Julia thread asks for it at a time.
const PYTHON_LOCK = ReentrantLock()
# Fitness of every expression string seen in this search, and its lock.
const MEMO = Dict{String,Float64}()
const MEMO_LOCK = ReentrantLock()
# Polling starts at FIRST_POLL seconds and doubles up to LAST_POLL seconds.
const FIRST_POLL = 0.001
const LAST_POLL = 0.05
# Seconds a request may be polled before it is scored Inf (set by `install_callback`).
const POLL_LIMIT = Ref{Float64}(3600.0)

"""
    install_callback(callback, poll_limit=3600.0)

Use the Python object `callback` (an `evomal_sr.engines.pysr.bridge.LossCallback`)
for the next search, and forget the fitnesses memoised for the previous one. A
request still unanswered after `poll_limit` seconds is scored `Inf`.
"""
function install_callback(callback, poll_limit::Real=3600.0)
    poll_limit > 0 || throw(ArgumentError("poll_limit must be positive, got $poll_limit"))
    lock(MEMO_LOCK) do
        empty!(MEMO)
    end
    POLL_LIMIT[] = Float64(poll_limit)
    CALLBACK[] = Py(callback)
    return nothing
end

"""
    remove_callback()

Drop the reference to the Python callback once the search is over.
"""
function remove_callback()
    CALLBACK[] = nothing
    return nothing
end

# Run `f()` holding the Julia-side lock, then the GIL. The GIL belongs to an OS
# thread, so the task is pinned to its thread (made sticky) while it holds it
# (PythonCall.jl issue #809); `f` itself should not yield.
function with_python(f)
    lock(PYTHON_LOCK) do
        task = current_task()
        was_sticky = task.sticky
        task.sticky = true
        try
            PythonCall.GIL.@lock f()
        finally
            task.sticky = was_sticky
        end
    end
end

# The tree as text, or `nothing` when it cannot be printed.
function equation_text(tree, dataset, options)
    names = hasproperty(dataset, :variable_names) ? dataset.variable_names : nothing
    try
        return string_tree(tree, options; variable_names=names)
    catch err
        err isa InterruptException && rethrow()
        return nothing
    end
end

function memo_lookup(text::String)
    lock(MEMO_LOCK) do
        get(MEMO, text, nothing)
    end
end

function memo_store!(text::String, value::Float64)
    lock(MEMO_LOCK) do
        MEMO[text] = value
    end
    return value
end

# Ask Python for the fitness of `text`, waiting between polls with `sleep`.
# The callback answers NaN while the result is pending; after `limit` seconds
# of NaN the candidate is given up (Inf, with a warning).
function request_fitness(text::String, limit::Float64=POLL_LIMIT[])::Float64
    try
        ticket = with_python() do
            callback = CALLBACK[]
            callback === nothing && error("evomal-sr: no Python callback is installed")
            pyconvert(Int, callback.submit(text))
        end
        started = time()
        delay = FIRST_POLL
        while true
            value = with_python() do
                callback = CALLBACK[]
                callback === nothing && error("evomal-sr: the Python callback was removed")
                pyconvert(Float64, callback.poll(ticket))
            end
            isnan(value) || return value
            if time() - started > limit
                @warn "evomal-sr: no fitness for $(repr(text)) after $(limit) s; scoring it Inf" maxlog=20
                return Inf
            end
            sleep(delay)
            delay = min(2 * delay, LAST_POLL)
        end
    catch err
        err isa InterruptException && rethrow()
        return Inf
    end
end

"""
    objective(tree, dataset::Dataset{T,L}, options) where {T,L}

PySR's full objective: the fitness of `tree` computed by the Python evaluator,
memoised on the tree's string; `L(Inf)` for anything that fails.
"""
function objective(tree, dataset::Dataset{T,L}, options)::L where {T,L}
    text = equation_text(tree, dataset, options)
    text === nothing && return L(Inf)
    value = memo_lookup(text)
    if value === nothing
        value = memo_store!(text, request_fitness(text))
    end
    return isfinite(value) ? L(value) : L(Inf)
end

end # module EvomalPySR
