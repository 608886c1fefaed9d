(ns ff-mcp.bridge.stdio
  "A minimal MCP client over stdio: spawns a server process and speaks newline-delimited JSON-RPC 2.0.

  Every request waits on its own promise with a deadline, so a server that dies, hangs or drops a
  message (mcp 2.3 answers nothing to batches and non-JSON lines) gives an ex-info, never a hang.
  A daemon thread reads stdout and routes responses by id; notifications and stray lines are skipped.
  stdin is closed only after every request has its answer (EOF cancels in-flight requests)."
  (:require [clojure.data.json :as json]
            [clojure.java.io :as io]
            [clojure.string :as str])
  (:import [java.io BufferedReader Writer]
           [java.util.concurrent TimeUnit]))

(def protocol-version
  "The MCP handshake version this client asks for."
  "2025-06-18")

(def defaults
  "Options of `start`: deadlines in milliseconds, the client's name, server stderr handling."
  {:init-timeout-ms 60000   ; first answer includes the server's Python/torch start-up
   :timeout-ms 120000       ; any later request
   :close-timeout-ms 5000   ; how long `close!` waits for the server to exit after EOF
   :stderr :capture         ; :capture keeps the last lines for error messages; :inherit passes them on
   :client-info {:name "ff-mcp-clj" :version "0.1.0"}})

(def ^:private stderr-lines-kept 40)
(def ^:private skipped-kept 100)   ; skipped notifications and stray lines, newest last (for debugging)

(defn- keep-skipped!
  [conn x]
  (swap! (:skipped conn) #(let [v (conj % x)] (if (> (count v) skipped-kept) (subvec v 1) v))))

(defn- daemon-thread
  [thread-name f]
  (doto (Thread. ^Runnable f ^String thread-name)
    (.setDaemon true)
    (.start)))

(defn- stderr-tail
  [conn]
  (str/join "\n" @(:stderr-tail conn)))

(defn- exit-code
  "Returns the process's exit code, waiting up to `ms` for it, or nil while it still runs."
  [^Process proc ms]
  (when (.waitFor proc ms TimeUnit/MILLISECONDS)
    (.exitValue proc)))

(defn- server-gone-error
  [conn method]
  (let [code (exit-code (:proc conn) 2000)
        tail (stderr-tail conn)]
    (ex-info (str "MCP server " (pr-str (:command conn))
                  (if code (str " exited with code " code) " closed its stdout")
                  " before answering " method
                  (when (seq tail) (str "; its stderr ended with:\n" tail)))
             {:type :ff-mcp/server-died :method method :exit-code code :stderr tail
              :command (:command conn)})))

(defn- fail-pending!
  "Answers every waiting request with `error` (the reader thread saw EOF or broke)."
  [conn]
  (doseq [[_ p] (first (reset-vals! (:pending conn) {}))]
    (deliver p ::eof)))

(defn- route!
  [conn line]
  (let [msg (try (json/read-str line :key-fn keyword)
                 (catch Exception _ ::not-json))]
    (cond
      (= ::not-json msg) (keep-skipped! conn line)
      (and (map? msg) (contains? msg :id) (or (contains? msg :result) (contains? msg :error)))
      (when-let [p (get @(:pending conn) (:id msg))]
        (swap! (:pending conn) dissoc (:id msg))
        (deliver p msg))
      :else (keep-skipped! conn msg))))   ; notifications, server requests

(defn- read-loop
  [conn]
  (let [^BufferedReader out (:out conn)]
    (try
      (loop []
        (when-let [line (.readLine out)]
          (when-not (str/blank? line) (route! conn line))
          (recur)))
      (catch Exception _ nil)
      (finally
        (reset! (:open? conn) false)
        (fail-pending! conn)))))

(defn- drain-stderr
  [conn ^java.io.InputStream err]
  (with-open [r (io/reader err :encoding "UTF-8")]
    (doseq [line (line-seq r)]
      (swap! (:stderr-tail conn) #(vec (take-last stderr-lines-kept (conj % line)))))))

(defn- send!
  [conn msg]
  (locking (:in conn)
    (let [^Writer in (:in conn)]
      (.write in (str (json/write-str msg) "\n"))
      (.flush in))))

(defn notify!
  "Sends a JSON-RPC notification (no id, no answer). Returns nil."
  [conn method params]
  (send! conn (cond-> {:jsonrpc "2.0" :method method} params (assoc :params params)))
  nil)

(defn request!
  "Returns the result of JSON-RPC `method` with `params`, waiting at most :timeout-ms.

  Throws ex-info when the server answers with an error, dies, or does not answer in time."
  ([conn method params] (request! conn method params (:timeout-ms conn)))
  ([conn method params timeout-ms]
   (let [id (swap! (:ids conn) inc)
         answer (promise)]
     (when-not @(:open? conn)
       (throw (server-gone-error conn method)))
     (swap! (:pending conn) assoc id answer)
     (when-not @(:open? conn) (deliver answer ::eof))   ; the reader may have hit EOF just now
     (try
       (send! conn {:jsonrpc "2.0" :id id :method method :params params})
       (catch java.io.IOException _
         (swap! (:pending conn) dissoc id)
         (throw (server-gone-error conn method))))
     (let [msg (deref answer timeout-ms ::timeout)]
       (cond
         (= ::timeout msg)
         (do (swap! (:pending conn) dissoc id)
             (throw (ex-info (str "MCP server " (pr-str (:command conn)) " gave no answer to " method
                                  " within " timeout-ms " ms")
                             {:type :ff-mcp/timeout :method method :timeout-ms timeout-ms})))
         (= ::eof msg) (throw (server-gone-error conn method))
         (:error msg)
         (let [{:keys [code message data]} (:error msg)]
           (throw (ex-info (str method " failed: " message (when data (str " (" (pr-str data) ")")))
                           {:type :ff-mcp/rpc-error :method method :code code :server-message message
                            :data data})))
         :else (:result msg))))))

(defn close!
  "Closes stdin (the server exits on EOF), waits :close-timeout-ms, then kills it. Returns the exit code."
  [conn]
  (when (compare-and-set! (:closing? conn) false true)
    (let [^Process proc (:proc conn)
          deadline (+ (System/currentTimeMillis) (:close-timeout-ms conn))]
      (while (and (seq @(:pending conn)) (< (System/currentTimeMillis) deadline))
        (Thread/sleep 20))                    ; other threads' requests get their answers first
      (try (.close ^Writer (:in conn)) (catch java.io.IOException _ nil))
      (or (exit-code proc (:close-timeout-ms conn))
          (do (.destroy proc)
              (or (exit-code proc 2000)
                  (do (.destroyForcibly proc) (exit-code proc 2000))))))))

(defn- spawn
  [command opts]
  (let [pb (ProcessBuilder. ^java.util.List (mapv str command))
        _ (when (= :inherit (:stderr opts))
            (.redirectError pb java.lang.ProcessBuilder$Redirect/INHERIT))
        _ (when-let [env (:env opts)]
            (let [penv (.environment pb)]
              (doseq [[k v] env] (.put penv (name k) (str v)))))
        _ (when-let [dir (:dir opts)] (.directory pb (io/file dir)))]
    (try
      (.start pb)
      (catch java.io.IOException e
        (throw (ex-info (str "cannot start MCP server " (pr-str (vec command)) ": " (ex-message e)
                             "; set :command or FF_MCP_COMMAND, e.g. [\"python\" \"-m\" \"ff_mcp\" \"serve\"]")
                        {:type :ff-mcp/spawn-failed :command (vec command)} e))))))

(defn start
  "Returns a connection to a freshly spawned MCP server after the initialize handshake.

  `command` is the argv vector, e.g. [\"ff-mcp\" \"serve\"]. Options (see `defaults`) may add
  :env (a map merged into the environment) and :dir. The connection holds :server-info and :tools."
  ([command] (start command {}))
  ([command opts]
   (let [opts (merge defaults opts)
         proc (spawn command opts)
         conn (merge opts
                     {:command (vec command)
                      :proc proc
                      :in (io/writer (.getOutputStream proc) :encoding "UTF-8")
                      :out (io/reader (.getInputStream proc) :encoding "UTF-8")
                      :ids (atom 0)
                      :pending (atom {})
                      :skipped (atom [])
                      :stderr-tail (atom [])
                      :open? (atom true)
                      :closing? (atom false)})]
     (when (= :capture (:stderr opts))
       (daemon-thread "ff-mcp-stdio-stderr" #(drain-stderr conn (.getErrorStream proc))))
     (daemon-thread "ff-mcp-stdio-reader" #(read-loop conn))
     (try
       (let [init (request! conn "initialize"
                            {:protocolVersion protocol-version
                             :capabilities {}
                             :clientInfo (:client-info opts)}
                            (:init-timeout-ms opts))]
         (notify! conn "notifications/initialized" nil)
         (assoc conn :server-info (:serverInfo init) :protocol (:protocolVersion init)))
       (catch Exception e
         (close! conn)
         (throw e))))))

(defn alive?
  "Returns true while the server process runs and its stdout is open."
  [conn]
  (and @(:open? conn) (.isAlive ^Process (:proc conn))))

(defn list-tools
  "Returns the names of the server's tools."
  [conn]
  (mapv :name (:tools (request! conn "tools/list" {}))))

(defn- tool-payload
  "Returns a tool result's structured content, else its first text block read as JSON, else the text."
  [result]
  (or (:structuredContent result)
      (let [text (some #(when (= "text" (:type %)) (:text %)) (:content result))]
        (try (json/read-str text :key-fn keyword)
             (catch Exception _ {:text text})))))

(defn call-tool
  "Returns the result of MCP tool `tool-name` called with `arguments` (a map), as a map with keyword keys.

  A result flagged isError throws ex-info whose message is the server's text."
  ([conn tool-name arguments] (call-tool conn tool-name arguments (:timeout-ms conn)))
  ([conn tool-name arguments timeout-ms]
   (let [result (request! conn "tools/call" {:name tool-name :arguments arguments} timeout-ms)]
     (if (:isError result)
       (let [text (str/join "\n" (keep :text (:content result)))]
         (throw (ex-info text {:type :ff-mcp/tool-error :tool tool-name :server-message text})))
       (tool-payload result)))))
