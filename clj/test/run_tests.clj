;; Runs clojure.test namespaces and exits 1 on any failure or error, 0 otherwise.
;; Usage, from the repository root:
;;   clojure -cp clj/src:clj/test:/usr/share/java/data.json.jar clj/test/run_tests.clj [ns ...]
;; With no namespaces, runs every *_test.clj under clj/test.
(require '[clojure.java.io :as io]
         '[clojure.string :as str]
         '[clojure.test :as test])

(defn- file->ns
  [root file]
  (-> (str (.relativize (.toPath (io/file root)) (.toPath file)))
      (str/replace #"\.clj$" "")
      (str/replace "_" "-")
      (str/replace java.io.File/separator ".")
      symbol))

(defn- all-test-namespaces
  [root]
  (->> (file-seq (io/file root))
       (filter #(str/ends-with? (.getName %) "_test.clj"))
       (map #(file->ns root %))
       sort))

(let [namespaces (or (seq (map symbol *command-line-args*)) (all-test-namespaces "clj/test"))
      _ (apply require namespaces)
      {:keys [test fail error]} (apply test/run-tests namespaces)]
  (shutdown-agents)
  (System/exit (if (and (pos? test) (zero? (+ fail error))) 0 1)))
